# Runs the README's first program (PROGRAM) and checks every line it promises.
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 30)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "the first program exited with ${code}\n${out}\n${err}")
endif()
foreach(line "order 42: 19.99" "order 43: 5.00" " was acked" "prices.eurusd = 1.084100")
  string(FIND "${out}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the first program did not print \"${line}\":\n${out}\n${err}")
  endif()
endforeach()
message(STATUS "the first program printed:\n${out}")
