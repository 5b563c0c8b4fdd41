"""Code stock (券库存): importing files of redemption codes, the summary and the code list, the
daily expiry, and the one claim of in-stock codes (:func:`service.claim_codes`) that issuance and
purchase take codes with."""
