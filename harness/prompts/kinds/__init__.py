"""Variant kinds, one module each (baseline, few_shot, rag, fine_tuned), registered by name in
harness.variant_kinds. base.VariantKind says what a kind is; kind_of(variant) gives a variant's kind."""
