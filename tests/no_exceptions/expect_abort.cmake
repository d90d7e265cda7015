# A death test: runs PROGRAM with ARG in a child process and passes only if the child died
# (a signal or a failing exit code) after printing MESSAGE on stderr.
execute_process(COMMAND ${PROGRAM} ${ARG} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "child: ${result}; stderr: ${err}")
if(result EQUAL 0)
  message(FATAL_ERROR "the child returned normally: ${out}")
endif()
string(FIND "${err}" "${MESSAGE}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the child's stderr lacks '${MESSAGE}'")
endif()
