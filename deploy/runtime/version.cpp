#include "deploy/runtime/version.h"

#include "core/version.h"
#include "deploy/runtime/runtime_signature.h"

namespace mixnas::rt {

const char* runtime_signature() {
  return MIXNAS_RUNTIME_SIGNATURE;
}

const char* runtime_version() {
  return MIXNAS_VERSION "+" MIXNAS_RUNTIME_SIGNATURE;
}

}  // namespace mixnas::rt
