-- Each staging table holds, month by month, exactly what raw holds: a stage month left behind
-- after its raw month was reloaded or emptied (a missed or failed incremental run) shows here.
-- With DPC_YYYYMM set (a pipeline run) only that month is checked: a month another run rolled
-- back must not block this one; without it (make test, ad hoc) every month is.
{%- set month = dpc_target_month() %}

{%- set comparisons = [
    ('y1_lines', source('dpc_raw', 'y1'), ref('stg_dpc__y1_cases'),
        "count(distinct case when summary_no = '0' then facility_cd || '|' || patient_id || '|' || admission_date || '|' || admission_seq_no end)",
        'count(*)'),
    ('ef_in', source('dpc_raw', 'ef_in'), ref('stg_dpc__ef_in_stays'), 'count(*)', 'sum(n_ef_rows)'),
    ('d', source('dpc_raw', 'd'), ref('stg_dpc__d'), 'count(*)', 'count(*)'),
] %}

with

{% for name, raw_relation, stage_relation, raw_count, stage_count in comparisons %}
    {{ name }}_raw as (

        select
            yyyymm,
            {{ raw_count }} as n_rows
        from {{ raw_relation }}
        group by yyyymm

    ),

    {{ name }}_stage as (

        select
            yyyymm,
            {{ stage_count }} as n_rows
        from {{ stage_relation }}
        group by yyyymm

    ),

    {{ name }}_compared as (

        select
            '{{ name }}' as table_name,
            coalesce({{ name }}_raw.yyyymm, {{ name }}_stage.yyyymm) as yyyymm,
            coalesce({{ name }}_raw.n_rows, 0) as n_raw,
            coalesce({{ name }}_stage.n_rows, 0) as n_stage
        from {{ name }}_raw
        full outer join {{ name }}_stage
            on {{ name }}_raw.yyyymm = {{ name }}_stage.yyyymm

    ),

{% endfor %}

compared as (

    {% for name, _r, _s, _rc, _sc in comparisons %}
        select
            table_name,
            yyyymm,
            n_raw,
            n_stage
        from {{ name }}_compared
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from compared
where n_raw <> n_stage
{%- if month %}
    and yyyymm = '{{ month }}'
{%- endif %}
