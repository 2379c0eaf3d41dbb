# House warnings (STYLE.md "Build") and hardening, applied per target.
set(KH_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wcast-qual -Wwrite-strings
  -Wstrict-prototypes -Wmissing-prototypes -Wimplicit-fallthrough -Wvla)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND KH_WARNINGS -Wjump-misses-init)
endif()
if(KEYHOLD_WERROR)
  list(APPEND KH_WARNINGS -Werror)
endif()

set(KH_HARDEN -fstack-protector-strong)
if(NOT KEYHOLD_SANITIZE AND NOT KEYHOLD_FUZZ)
  add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()
add_compile_options(${KH_HARDEN})
add_link_options(-Wl,-z,relro,-z,now)

function(kh_warnings target)
  target_compile_options(${target} PRIVATE ${KH_WARNINGS})
endfunction()
