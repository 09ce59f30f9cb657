"""On-device export: TFLite conversion, quantization and writing the bundle.

Sits above keyboard_lm.training (it converts a trained run) and keyboard_lm.phone (it checks
what it wrote with the phone's loader and step runner); only the commands import it.
"""
