"""The export stage: a model folder → GGUF / ONNX artifacts, each checked for parity, plus a manifest.

Public surface: ``edgemed.export.stage.run(config)`` and ``edgemed.export.manifest.load_manifest``.
"""
