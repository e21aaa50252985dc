"""Calibration: INT8 post-training quantization (Q/DQ) and its accuracy report (onnx + onnxruntime, no torch)."""
