// The runtime-switched activation path of lstmp.cpp (see any_activation.hpp).
#define RNNKIT_ANY_ACTIVATION_TU 1
#include "lstmp.cpp"
