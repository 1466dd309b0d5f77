-- name: principal-summary
-- title: Activity summary by principal
-- description: Calls, write calls, errors, services, regions and source IPs per principal: the first overview of a window during triage.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  useridentity.type AS identity_type,
  count(*) AS calls,
  count_if(readonly = 'false') AS write_calls,
  count_if(errorcode IS NOT NULL) AS failed_calls,
  count(DISTINCT eventsource) AS services,
  count(DISTINCT awsregion) AS regions,
  count(DISTINCT sourceipaddress) AS source_ips,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
GROUP BY 1, 2
ORDER BY calls DESC, principal
