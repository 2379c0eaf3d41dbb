/* proto_schema: the generated protobuf-c descriptors of keyhold.proto for
 * code that walks the schema by name (libkeyhold's generic messages). */
#ifndef PROTO_SCHEMA_H
#define PROTO_SCHEMA_H

#include <protobuf-c/protobuf-c.h>

#include "keyhold.pb-c.h"

/* `service KeyHold`: methods by name, with their input/output messages. */
#define PROTO_SERVICE (&keyhold__v1__key_hold__descriptor)

#endif
