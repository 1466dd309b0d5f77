-- name: mfa-device-changes
-- title: MFA devices deactivated or deleted
-- description: MFA removed from IAM users or root: often the step before a takeover of the console password.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  coalesce(json_extract_scalar(requestparameters, '$.userName'), useridentity.username) AS target_user,
  json_extract_scalar(requestparameters, '$.serialNumber') AS serial_number,
  recipientaccountid,
  sourceipaddress,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'iam.amazonaws.com'
  AND eventname IN ('DeactivateMFADevice', 'DeleteVirtualMFADevice')
ORDER BY eventtime
