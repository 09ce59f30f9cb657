"""On-device export: TFLite conversion, quantization and the bundle."""
