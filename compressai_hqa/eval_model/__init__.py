"""``python -m compressai_hqa.eval_model``: CompressAI's eval_model, HQA registered."""
