-- name: access-denied-by-principal
-- title: Access-denied storms by principal
-- description: Principals with many AccessDenied / UnauthorizedOperation errors: permission enumeration with stolen credentials, or broken automation.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
-- param min_denied integer = 10: Only principals with at least this many denied calls.
SELECT
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  useridentity.accountid AS account_id,
  count(*) AS denied_calls,
  count(DISTINCT eventname) AS distinct_actions,
  count(DISTINCT eventsource) AS distinct_services,
  count(DISTINCT sourceipaddress) AS source_ips,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND (
    errorcode LIKE '%AccessDenied%'
    OR errorcode LIKE '%UnauthorizedOperation%'
    OR errorcode LIKE '%Unauthorized%'
    OR errorcode = 'Forbidden'
  )
GROUP BY 1, 2
HAVING count(*) >= CAST({{min_denied}} AS integer)
ORDER BY denied_calls DESC, principal
