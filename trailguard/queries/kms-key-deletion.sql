-- name: kms-key-deletion
-- title: KMS key deletions, disables and policy changes
-- description: Calls that schedule deletion of, disable, or change the policy of KMS keys (ransomware and log-destruction precursor), successful or not.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  awsregion,
  json_extract_scalar(requestparameters, '$.keyId') AS key_id,
  json_extract_scalar(requestparameters, '$.pendingWindowInDays') AS pending_window_days,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'kms.amazonaws.com'
  AND eventname IN (
    'ScheduleKeyDeletion', 'DisableKey', 'PutKeyPolicy', 'DisableKeyRotation', 'DeleteImportedKeyMaterial',
    'CancelKeyDeletion', 'EnableKey'
  )
ORDER BY eventtime
