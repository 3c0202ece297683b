with

icd10_master as (

    select * from {{ ref('icd10_master') }}

),

final as (

    select
        icd10_code,
        name_ja,
        chapter,
        substring(icd10_code, 1, 3) as icd10_category
    from icd10_master

)

select
    icd10_code,
    name_ja,
    chapter,
    icd10_category
from final
