-- name: root-activity
-- title: Root user activity
-- description: Every call made with the root user's credentials (console or keys; console actions carry invokedBy signin.amazonaws.com, console.amazonaws.com or AWS Internal), excluding AWS service events and calls another service made on root's behalf.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventsource,
  eventname,
  useridentity.accountid AS account_id,
  sourceipaddress,
  useragent,
  awsregion,
  useridentity.accesskeyid AS access_key_id,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND useridentity.type = 'Root'
  AND (useridentity.invokedby IS NULL
       OR useridentity.invokedby IN ('signin.amazonaws.com', 'console.amazonaws.com', 'AWS Internal'))
  AND coalesce(eventtype, '') <> 'AwsServiceEvent'
ORDER BY eventtime
