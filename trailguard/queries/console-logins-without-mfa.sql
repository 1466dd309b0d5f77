-- name: console-logins-without-mfa
-- title: Console sign-ins without MFA
-- description: Successful console sign-ins of IAM users and root without MFA. Federated and assumed-role sign-ins are excluded: their MFA happens at the identity provider (CIS SSO-friendly variant).
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  useridentity.type AS identity_type,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  useridentity.accountid AS account_id,
  sourceipaddress,
  useragent,
  json_extract_scalar(additionaleventdata, '$.MFAUsed') AS mfa_used,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventname = 'ConsoleLogin'
  AND useridentity.type IN ('IAMUser', 'Root')
  AND json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Success'
  AND coalesce(json_extract_scalar(additionaleventdata, '$.MFAUsed'), 'No') <> 'Yes'
ORDER BY eventtime
