with

y1 as (

    select
        yyyymm,
        source_file,
        line_no,
        facility_cd,
        patient_id,
        admission_date,
        admission_seq_no,
        summary_no,
        item_code,
        payload_1,
        payload_2,
        payload_3,
        payload_4
    from {{ source('dpc_raw', 'y1') }}
    where {{ dpc_month_filter() }}
        and summary_no <> '0'

),

ranked_items as (

    select
        *,
        row_number() over (
            partition by
                yyyymm, facility_cd, patient_id, admission_date, admission_seq_no,
                summary_no, item_code
            order by source_file, line_no
        ) as item_rank
    from y1

),

pivoted as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        admission_date as admission_date_text,
        admission_seq_no as admission_seq_no_text,
        summary_no,
        max(source_file) as source_file,
        min(line_no) as first_line_no,
        count(*) as n_items,
        {%- for item_code, payload, name in [
            ('A001010', 'payload_1', 'ward_code'),
            ('A001010', 'payload_2', 'segment_start_date'),
            ('A001010', 'payload_3', 'segment_end_date'),
            ('A001010', 'payload_4', 'ward_type'),
            ('A006010', 'payload_2', 'main_icd10'),
        ] %}
        max(
            case when item_rank = 1 and item_code = '{{ item_code }}' then {{ payload }} end
        ) as {{ name }}_text{{ ',' if not loop.last }}
    {%- endfor %}
    from ranked_items
    group by yyyymm, facility_cd, patient_id, admission_date, admission_seq_no, summary_no

),

segments as (

    select
        yyyymm,
        facility_cd,
        patient_id,
        {{ dpc_date('admission_date_text') }} as admission_date,
        {{ dpc_int('admission_seq_no_text') }} as admission_seq_no,
        summary_no,
        {{ dpc_text('ward_code_text') }} as ward_code,
        {{ dpc_text('ward_type_text') }} as ward_type,
        {{ dpc_date('segment_start_date_text') }} as segment_start_date,
        {{ dpc_date('segment_end_date_text') }} as segment_end_date,
        {{ dpc_text('main_icd10_text') }} as main_icd10,
        cast(n_items as integer) as n_items,
        source_file,
        first_line_no
    from pivoted

)

select * from segments
