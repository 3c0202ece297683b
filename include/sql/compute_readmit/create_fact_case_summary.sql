-- Create mart.fact_case_summary, one row per case with the readmission columns of contract §3
-- plus a few facts copied from mart.fct_cases. Filled by merge_fact_case_summary.sql.
-- Parameters: none. Portable (DuckDB 2.0 and Redshift), runs in the caller's transaction.
-- Idempotent: creates the schema and the table only when missing, never alters or empties them.
create schema if not exists mart;

create table if not exists mart.fact_case_summary (
    yyyymm varchar(6) not null,
    facility_cd varchar(32) not null,
    patient_id varchar(64) not null,
    admission_date date not null,
    admission_seq_no bigint not null,
    discharge_date date,
    admission_type varchar(16),
    is_unplanned boolean not null,
    days_since_prev_discharge integer,
    is_readmission_7d boolean not null,
    is_readmission_30d boolean not null,
    days_to_next_admission integer,
    readmitted_within_7d boolean not null,
    readmitted_within_30d boolean not null,
    length_of_stay_days integer,
    is_death boolean not null,
    dpc_code varchar(32),
    mdc varchar(8),
    total_points bigint,
    main_icd10 varchar(16)
);
