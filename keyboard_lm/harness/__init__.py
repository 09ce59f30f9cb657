"""The laptop's harness around the phone engine, TensorFlow-free: the keystroke simulator
(KSR, top-1/top-3, reachable words), the Presage baseline and the terminal demo. It drives
``keyboard_lm.phone`` exactly as the app would; nothing in the phone package imports it."""
