"""The API contract as data: what each RPC declares, and the checks that keep it honest.

`codegen` turns protos/ into gen/python/ (it must import without the generated code);
`descriptors` reads sensitivity, PII and idempotency from the compiled descriptor set.
"""
