with

mdc_master as (

    select * from {{ ref('mdc_master') }}

),

final as (

    select
        mdc,
        name_ja,
        name_en
    from mdc_master

)

select
    mdc,
    name_ja,
    name_en
from final
