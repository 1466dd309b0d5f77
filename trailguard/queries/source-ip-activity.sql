-- name: source-ip-activity
-- title: Everything from one source IP
-- description: All calls from one source IP address (or AWS service name), grouped by principal and action, to pivot from a suspicious address to the identities it used.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
-- param source_ip string: Source IP address as CloudTrail records it, e.g. 203.0.113.7.
SELECT
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  eventsource,
  eventname,
  count(*) AS calls,
  count_if(errorcode IS NOT NULL) AS failed_calls,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND sourceipaddress = {{source_ip}}
GROUP BY 1, 2, 3
ORDER BY first_seen, principal, eventname
