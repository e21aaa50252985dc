"""Export: checkpoint -> ONNX (checked for parity) -> TensorRT engines (torch + onnx)."""
