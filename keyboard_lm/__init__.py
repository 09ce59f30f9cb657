"""keyboard-lm: next-word suggestions for a phone keyboard.

Three floors, imports only ever going down (tests/test_layout.py checks it):
``keyboard_lm.phone`` (the TensorFlow-free engine, bundle loading, the LiteRT runner),
``keyboard_lm.training`` (the Keras model and its training), and on top the commands
(``keyboard_lm.cli``, ``keyboard_lm.personalize``, ``keyboard_lm.quiet``), which may use
everything, ``export`` included.

Imports only the standard library, so that importing a submodule never pulls in TensorFlow.

TensorFlow's CPU kernels: on x86-64 this package asks for oneDNN's (``TF_ENABLE_ONEDNN_OPTS=1``)
unless the environment already says otherwise. TensorFlow turns them on by itself only on CPUs
with AVX512-VNNI, BF16 or AMX; elsewhere (AVX2 CPUs: most AMD, older Intel) it falls back to
Eigen kernels that the pip wheel builds without AVX2 or FMA, and training runs 20-35% slower
(README, "Training throughput"). The variable is read when TensorFlow loads, so it takes
effect only if this package is imported first, as the ``kblm`` command does.
"""
import os as _os
import platform as _platform

if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
