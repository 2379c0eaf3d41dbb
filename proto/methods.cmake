# methods.cmake: writes proto_methods.h from keyhold.proto's `service
# KeyHold` (cmake -DIN=keyhold.proto -DOUT=proto_methods.h -P methods.cmake):
# PROTO_METHODS(X) calls X(UPPER_SNAKE, "Name") for each rpc, in order;
# PROTO_METHODS_RETRY(X) only for those whose line carries
# `option idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT` (the methods
# libkeyhold may send again on another node, client/endpoints.c).
file(STRINGS ${IN} lines REGEX "^[ \t]*rpc[ \t]+[A-Za-z0-9_]+[ \t]*\\(")
set(body "")
set(retry "")
foreach(l ${lines})
  string(REGEX REPLACE "^[ \t]*rpc[ \t]+([A-Za-z0-9_]+).*" "\\1" name "${l}")
  string(REGEX REPLACE "([a-z0-9])([A-Z])" "\\1_\\2" snake "${name}")
  string(TOUPPER "${snake}" upper)
  string(APPEND body " \\\n\tX(${upper}, \"${name}\")")
  if(l MATCHES "idempotency_level[ \t]*=[ \t]*(NO_SIDE_EFFECTS|IDEMPOTENT)")
    string(APPEND retry " \\\n\tX(${upper}, \"${name}\")")
  endif()
endforeach()
set(text "/* Generated from keyhold.proto by proto/methods.cmake; do not edit. */\n#ifndef PROTO_METHODS_H\n#define PROTO_METHODS_H\n#define PROTO_METHODS(X)${body}\n#define PROTO_METHODS_RETRY(X)${retry}\n#endif\n")
# Rewritten only when it changes, so an unrelated .proto edit rebuilds little.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE ${OUT} "${text}")
