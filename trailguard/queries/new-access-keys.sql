-- name: new-access-keys
-- title: New access keys
-- description: Access keys created, and for whom. A key created for another user, or for root, is a classic persistence step.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  coalesce(
    json_extract_scalar(requestparameters, '$.userName'),
    json_extract_scalar(responseelements, '$.accessKey.userName'),
    useridentity.username,
    useridentity.type
  ) AS key_owner,
  json_extract_scalar(responseelements, '$.accessKey.accessKeyId') AS access_key_id,
  useridentity.type = 'Root' AS created_by_root,
  recipientaccountid,
  sourceipaddress,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'iam.amazonaws.com'
  AND eventname = 'CreateAccessKey'
  AND errorcode IS NULL
ORDER BY eventtime
