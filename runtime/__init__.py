"""Torch-free deployable core: CULane I/O, preprocessing, lane decoding, metrics, inference.

Everything here runs with numpy + OpenCV (+ onnxruntime / TensorRT for inference) only; a test
checks that importing any module of this package never loads torch.
"""
