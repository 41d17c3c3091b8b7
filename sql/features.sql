-- latmove's feature table, from the normalised flow table `flows` that
-- `latmove flows` writes (schema: docs/scale-out.md).
--
-- One row per (host, window) for hosts with timestamped flows, one whole-host
-- row (window_start NULL) for a host without any, exactly as `latmove
-- features` and `latmove detect` compute them. Portable SQL: GROUP BY,
-- COUNT(DISTINCT), CASE, CAST(... AS DOUBLE) before division, LN, joins, and
-- a running SUM over windows; no COUNT(DISTINCT ...) OVER. A line ending in
-- `-- dialect: NAME` belongs to that engine only; `latmove sql --dialect NAME`
-- prints the file for NAME (spark, duckdb, trino, clickhouse).
SET join_use_nulls = 1; -- dialect: clickhouse
WITH
-- The flows as profiling counts them. `wk` is the window key: the window's
-- start, or a sentinel for untimed flows (and for every flow without
-- windows), so joins on it need no NULL-safe equality.
f AS (
  SELECT
    src, dst, dport, ts, minute_key, slot_key, answered, tiny, duration_us,
    dst_internal, dst_subnet, sensitive_port,
    COALESCE(window_start, -9223372036854775807) AS wk,
    CASE WHEN out_packets IS NOT NULL AND back_packets IS NOT NULL
         THEN out_packets + back_packets END AS packets,
    CASE WHEN out_packets IS NOT NULL AND back_packets IS NOT NULL
         THEN COALESCE(out_bytes, 0) + COALESCE(back_bytes, 0) END AS bytes
  FROM flows
),
-- Hosts with at least one window: their untimed flows are not scored.
windowed AS (
  SELECT DISTINCT src FROM flows WHERE window_start IS NOT NULL
),
-- The flows of the scored entities.
e AS (
  SELECT f.*
  FROM f LEFT JOIN windowed w ON f.src = w.src
  WHERE f.wk <> -9223372036854775807 OR w.src IS NULL
),
base AS (
  SELECT
    src, wk,
    COUNT(*) AS flow_count,
    COUNT(DISTINCT dst) AS unique_dst_ips,
    COUNT(DISTINCT dport) AS unique_dst_ports,
    COUNT(duration_us) AS durations_known,
    SUM(duration_us) AS duration_sum,
    COUNT(DISTINCT CASE WHEN dst_internal THEN dst END) AS internal_dst_ips,
    COUNT(DISTINCT CASE WHEN dst_internal THEN dst_subnet END) AS internal_subnets,
    COUNT(answered) AS replies_known,
    SUM(CASE WHEN answered = FALSE THEN 1 ELSE 0 END) AS unanswered,
    COUNT(packets) AS volumes_known,
    SUM(CASE WHEN tiny THEN 1 ELSE 0 END) AS tiny_flows,
    SUM(bytes) AS bytes_sum,
    SUM(packets) AS packets_sum,
    COUNT(DISTINCT CASE WHEN sensitive_port THEN dport END) AS sensitive_ports,
    COUNT(DISTINCT CASE WHEN dport < 1024 THEN dport END) AS privileged_ports,
    COUNT(DISTINCT minute_key) AS active_minutes
  FROM e
  GROUP BY src, wk
),
-- Per port: hosts reached (horizontal sweep) and flows (port entropy).
ports AS (
  SELECT src, wk, dport, COUNT(DISTINCT dst) AS hosts, COUNT(*) AS n
  FROM e
  GROUP BY src, wk, dport
),
port_stats AS (
  SELECT
    p.src, p.wk,
    MAX(p.hosts) AS max_hosts_one_port,
    SUM(-(CAST(p.n AS DOUBLE) / b.flow_count) * LN(CAST(p.n AS DOUBLE) / b.flow_count))
      / LN(CAST(2 AS DOUBLE)) AS dst_port_entropy
  FROM ports p JOIN base b ON p.src = b.src AND p.wk = b.wk
  GROUP BY p.src, p.wk
),
-- Per destination: ports reached (vertical scan).
dst_stats AS (
  SELECT src, wk, MAX(ports) AS max_ports_one_host
  FROM (SELECT src, wk, dst, COUNT(DISTINCT dport) AS ports FROM e GROUP BY src, wk, dst) d
  GROUP BY src, wk
),
-- The 5-minute peaks: a GROUP BY on the finer slot key, then MAX.
services AS (
  SELECT src, wk, slot_key, dst, dport, COUNT(*) AS n
  FROM e
  WHERE slot_key IS NOT NULL
  GROUP BY src, wk, slot_key, dst, dport
),
slots AS (
  SELECT src, wk, slot_key, COUNT(*) AS pairs, MAX(n) AS most
  FROM services
  GROUP BY src, wk, slot_key
),
peaks AS (
  SELECT src, wk, MAX(pairs) AS peak_5min_dst_pairs, MAX(most) AS peak_5min_flows_one_service
  FROM slots
  GROUP BY src, wk
),
-- Admin peers to date, a running distinct count written as first
-- sightings (the window each (host, internal peer on a sensitive port) pair
-- is first seen in) plus a running SUM. A daily run keeps `admin_first` to
-- continue the count without rescanning history.
admin_first AS (
  SELECT src, dst, MIN(wk) AS wk
  FROM e
  WHERE dst_internal AND sensitive_port
  GROUP BY src, dst
),
admin_new AS (
  SELECT src, wk, COUNT(*) AS new_peers FROM admin_first GROUP BY src, wk
),
admin AS (
  SELECT
    b.src, b.wk,
    SUM(COALESCE(a.new_peers, 0)) OVER (
      PARTITION BY b.src ORDER BY b.wk ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS admin_peers_to_date
  FROM base b LEFT JOIN admin_new a ON b.src = a.src AND b.wk = a.wk
),
-- Who each host is, over all its flows.
hosts AS (
  SELECT
    src,
    COUNT(*) AS flows,
    MIN(ts) AS first_seen,
    MAX(ts) AS last_seen,
    MAX(CASE WHEN src_internal THEN 1 ELSE 0 END) AS internal,
    COUNT(label) AS labelled_flows,
    SUM(CASE WHEN attack THEN 1 ELSE 0 END) AS attack_flows
  FROM flows
  GROUP BY src
),
-- Flows to each internal host (a host that receives more than it starts is
-- a server: its peer group).
inbound AS (
  SELECT dst, COUNT(*) AS n FROM flows WHERE dst_internal GROUP BY dst
),
label_counts AS (
  SELECT src, label, COUNT(*) AS n FROM flows WHERE attack GROUP BY src, label
),
top_label AS (
  SELECT src, label
  FROM (
    SELECT src, label, ROW_NUMBER() OVER (PARTITION BY src ORDER BY n DESC, label) AS r
    FROM label_counts
  ) t
  WHERE r = 1
)
SELECT
  b.src AS ip,
  CASE WHEN b.wk = -9223372036854775807 THEN NULL ELSE b.wk END AS window_start,
  h.flows,
  h.first_seen,
  h.last_seen,
  h.internal = 1 AS internal,
  CASE WHEN h.internal = 1 THEN COALESCE(i.n, 0) ELSE 0 END AS inbound_flows,
  CASE WHEN h.labelled_flows = 0 THEN NULL
       WHEN h.attack_flows > 0 THEN 'attack' ELSE 'benign' END AS label,
  t.label AS attack_label,
  CAST(b.unique_dst_ips AS DOUBLE) AS unique_dst_ips,
  CAST(b.unique_dst_ports AS DOUBLE) AS unique_dst_ports,
  CAST(b.flow_count AS DOUBLE) AS flow_count,
  CASE WHEN b.durations_known = 0 THEN CAST(0 AS DOUBLE)
       ELSE b.duration_sum / CAST(b.durations_known AS DOUBLE) END AS mean_duration_us,
  CAST(b.internal_dst_ips AS DOUBLE) AS internal_dst_ips,
  CAST(b.unique_dst_ips - b.internal_dst_ips AS DOUBLE) AS external_dst_ips,
  CAST(b.internal_subnets AS DOUBLE) AS internal_subnets,
  CAST(a.admin_peers_to_date AS DOUBLE) AS admin_peers_to_date,
  CASE WHEN b.replies_known = 0 THEN CAST(0 AS DOUBLE)
       ELSE CAST(b.unanswered AS DOUBLE) / CAST(b.replies_known AS DOUBLE) END AS unanswered_share,
  CASE WHEN b.volumes_known = 0 THEN CAST(0 AS DOUBLE)
       ELSE CAST(b.tiny_flows AS DOUBLE) / CAST(b.volumes_known AS DOUBLE) END AS tiny_flow_share,
  CAST(b.sensitive_ports AS DOUBLE) AS sensitive_ports,
  CAST(b.privileged_ports AS DOUBLE) AS privileged_ports,
  CAST(ps.max_hosts_one_port AS DOUBLE) AS max_hosts_one_port,
  CAST(ds.max_ports_one_host AS DOUBLE) AS max_ports_one_host,
  ps.dst_port_entropy AS dst_port_entropy,
  CASE WHEN b.volumes_known = 0 THEN CAST(0 AS DOUBLE)
       ELSE b.bytes_sum / CAST(b.volumes_known AS DOUBLE) END AS bytes_per_flow,
  CASE WHEN b.volumes_known = 0 THEN CAST(0 AS DOUBLE)
       ELSE b.packets_sum / CAST(b.volumes_known AS DOUBLE) END AS packets_per_flow,
  CAST(b.unique_dst_ips AS DOUBLE)
    / CAST(CASE WHEN b.active_minutes = 0 THEN 1 ELSE b.active_minutes END AS DOUBLE)
    AS new_dsts_per_active_min,
  CAST(COALESCE(pk.peak_5min_dst_pairs, 0) AS DOUBLE) AS peak_5min_dst_pairs,
  CAST(COALESCE(pk.peak_5min_flows_one_service, 0) AS DOUBLE) AS peak_5min_flows_one_service,
  b.durations_known,
  b.volumes_known
FROM base b
JOIN hosts h ON b.src = h.src
JOIN admin a ON b.src = a.src AND b.wk = a.wk
JOIN port_stats ps ON b.src = ps.src AND b.wk = ps.wk
JOIN dst_stats ds ON b.src = ds.src AND b.wk = ds.wk
LEFT JOIN peaks pk ON b.src = pk.src AND b.wk = pk.wk
LEFT JOIN top_label t ON b.src = t.src
LEFT JOIN inbound i ON b.src = i.dst
ORDER BY ip, window_start
