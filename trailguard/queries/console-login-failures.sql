-- name: console-login-failures
-- title: Failed console sign-ins by source
-- description: Failed console sign-ins grouped by user name and source IP, most failures first: password spraying and brute force.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
-- param min_failures integer = 1: Only show groups with at least this many failures.
SELECT
  coalesce(useridentity.username, 'unknown') AS user_name,
  useridentity.accountid AS account_id,
  sourceipaddress,
  count(*) AS failures,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventname = 'ConsoleLogin'
  AND (
    json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Failure'
    OR errormessage = 'Failed authentication'
  )
GROUP BY 1, 2, 3
HAVING count(*) >= CAST({{min_failures}} AS integer)
ORDER BY failures DESC, user_name
