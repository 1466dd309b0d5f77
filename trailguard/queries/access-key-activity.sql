-- name: access-key-activity
-- title: Everything an access key did
-- description: All calls signed with one access key ID (long-term AKIA or temporary ASIA), to scope what leaked credentials were used for.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
-- param access_key_id string: The access key ID, e.g. AKIAIOSFODNN7EXAMPLE.
SELECT
  eventtime,
  eventsource,
  eventname,
  awsregion,
  sourceipaddress,
  useragent,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  errorcode,
  requestparameters,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND useridentity.accesskeyid = {{access_key_id}}
ORDER BY eventtime
