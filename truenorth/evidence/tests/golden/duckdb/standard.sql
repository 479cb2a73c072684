WITH exposures AS (
  SELECT
    "unit_id" AS unit_id,
    MIN("variation") AS variation,
    MAX("variation") AS last_variation,
    MIN("first_exposure_at") AS exposed_at
  FROM "assignments" AS assignment_rows
  WHERE
    "experiment" = 'checkout''24'
  GROUP BY
    "unit_id"
), a AS (
  SELECT
    unit_id,
    CASE WHEN variation = last_variation THEN variation END AS variation,
    CASE WHEN variation = last_variation THEN 0 ELSE 1 END AS excluded,
    exposed_at,
    exposed_at + INTERVAL '7' DAY AS b0,
    exposed_at - INTERVAL '14' DAY AS b1,
    exposed_at + INTERVAL '14' DAY AS b2
  FROM exposures
), j AS (
  SELECT
    a.unit_id AS unit_id,
    e."value" AS value,
    e."name" IN ('purchase') AND e."at" >= a.exposed_at AND e."at" < a.b0 AS c0,
    e."name" IN ('purchase') AND e."at" >= a.b1 AND e."at" < a.exposed_at AS c1,
    e."name" IN ('page_view') AND e."at" >= a.exposed_at AND e."at" < a.b2 AS c2,
    e."name" IN ('page_view') AND e."at" >= a.b1 AND e."at" < a.exposed_at AS c3
  FROM a
  LEFT JOIN "events" AS e
    ON e."unit_id" = a.unit_id AND e."name" IN ('page_view', 'purchase')
), u AS (
  SELECT
    unit_id,
    CAST(MAX(CASE WHEN c0 THEN 1 ELSE 0 END) AS DOUBLE) AS q0,
    CAST(MAX(CASE WHEN c1 THEN 1 ELSE 0 END) AS DOUBLE) AS q1,
    CAST(COUNT(CASE WHEN c0 THEN 1 END) AS DOUBLE) AS q2,
    CAST(COALESCE(SUM(CASE WHEN c0 THEN value END), 0) AS DOUBLE) AS q3,
    CAST(COALESCE(SUM(CASE WHEN c1 THEN value END), 0) AS DOUBLE) AS q4,
    CAST(COUNT(CASE WHEN c2 THEN 1 END) AS DOUBLE) AS q5,
    CAST(COUNT(CASE WHEN c3 THEN 1 END) AS DOUBLE) AS q6,
    CAST(AVG(CASE WHEN c0 THEN value END) AS DOUBLE) AS q7
  FROM j
  GROUP BY
    unit_id
)
SELECT
  CAST(a.variation AS TEXT) AS variation,
  CAST(COUNT(*) AS DOUBLE) AS units,
  CAST(COUNT(q0) AS DOUBLE) AS "conversion__n",
  CAST(SUM(q0) AS DOUBLE) AS "conversion__sum",
  CAST(SUM(q0 * q0) AS DOUBLE) AS "conversion__sum_squares",
  CAST(SUM(q1) AS DOUBLE) AS "conversion__pre_sum",
  CAST(SUM(q1 * q1) AS DOUBLE) AS "conversion__pre_sum_squares",
  CAST(SUM(q0 * q1) AS DOUBLE) AS "conversion__post_pre_sum_of_products",
  CAST(COUNT(q2) AS DOUBLE) AS "purchases__n",
  CAST(SUM(q2) AS DOUBLE) AS "purchases__sum",
  CAST(SUM(q2 * q2) AS DOUBLE) AS "purchases__sum_squares",
  CAST(COUNT(q3) AS DOUBLE) AS "revenue__n",
  CAST(SUM(q3) AS DOUBLE) AS "revenue__sum",
  CAST(SUM(q3 * q3) AS DOUBLE) AS "revenue__sum_squares",
  CAST(SUM(q4) AS DOUBLE) AS "revenue__pre_sum",
  CAST(SUM(q4 * q4) AS DOUBLE) AS "revenue__pre_sum_squares",
  CAST(SUM(q3 * q4) AS DOUBLE) AS "revenue__post_pre_sum_of_products",
  CAST(COUNT(q5) AS DOUBLE) AS "page_views__n",
  CAST(SUM(q5) AS DOUBLE) AS "page_views__sum",
  CAST(SUM(q5 * q5) AS DOUBLE) AS "page_views__sum_squares",
  CAST(SUM(q6) AS DOUBLE) AS "page_views__pre_sum",
  CAST(SUM(q6 * q6) AS DOUBLE) AS "page_views__pre_sum_squares",
  CAST(SUM(q5 * q6) AS DOUBLE) AS "page_views__post_pre_sum_of_products",
  CAST(COUNT(q3) AS DOUBLE) AS "revenue_per_page_view__n",
  CAST(SUM(q3) AS DOUBLE) AS "revenue_per_page_view__sum",
  CAST(SUM(q3 * q3) AS DOUBLE) AS "revenue_per_page_view__sum_squares",
  CAST(SUM(q5) AS DOUBLE) AS "revenue_per_page_view__d_sum",
  CAST(SUM(q5 * q5) AS DOUBLE) AS "revenue_per_page_view__d_sum_squares",
  CAST(SUM(q3 * q5) AS DOUBLE) AS "revenue_per_page_view__m_d_sum_of_products",
  CAST(COUNT(q7) AS DOUBLE) AS "order_value__n",
  CAST(SUM(q7) AS DOUBLE) AS "order_value__sum",
  CAST(SUM(q7 * q7) AS DOUBLE) AS "order_value__sum_squares",
  CAST(a.excluded AS DOUBLE) AS "excluded"
FROM u
JOIN a
  ON a.unit_id = u.unit_id
GROUP BY
  a.variation,
  a.excluded
ORDER BY
  a.excluded,
  a.variation
