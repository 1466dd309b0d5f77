-- name: logging-tampering
-- title: Who stopped or changed logging
-- description: CloudTrail trails and event data stores stopped, deleted or reconfigured (selectors, insights, updates), successful or not.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  sourceipaddress,
  useragent,
  awsregion,
  recipientaccountid,
  coalesce(
    json_extract_scalar(requestparameters, '$.name'),
    json_extract_scalar(requestparameters, '$.trailName'),
    json_extract_scalar(requestparameters, '$.eventDataStore')
  ) AS target,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'cloudtrail.amazonaws.com'
  AND eventname IN (
    'StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors', 'PutInsightSelectors',
    'DeleteEventDataStore', 'UpdateEventDataStore', 'StopEventDataStoreIngestion', 'RemoveTags'
  )
ORDER BY eventtime
