-- name: security-group-open-to-world
-- title: Security-group ingress opened to the internet
-- description: Successful ingress authorisations and rule modifications whose request mentions 0.0.0.0/0 or ::/0.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  awsregion,
  json_extract_scalar(requestparameters, '$.groupId') AS group_id,
  requestparameters,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'ec2.amazonaws.com'
  AND eventname IN ('AuthorizeSecurityGroupIngress', 'ModifySecurityGroupRules')
  AND errorcode IS NULL
  AND (strpos(requestparameters, '0.0.0.0/0') > 0 OR strpos(requestparameters, '::/0') > 0)
ORDER BY eventtime
