-- name: principal-activity
-- title: Everything a principal did in a time window
-- description: All calls by one principal, matched on its ARN, user name, principal ID or the role it assumed (session issuer ARN or name).
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
-- param principal string: ARN, IAM user name, role name, role ARN or principal ID of the caller.
SELECT
  eventtime,
  eventsource,
  eventname,
  awsregion,
  sourceipaddress,
  useragent,
  useridentity.accesskeyid AS access_key_id,
  errorcode,
  requestparameters,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND {{principal}} IN (
    useridentity.arn,
    useridentity.username,
    useridentity.principalid,
    useridentity.sessioncontext.sessionissuer.arn,
    useridentity.sessioncontext.sessionissuer.username
  )
ORDER BY eventtime
