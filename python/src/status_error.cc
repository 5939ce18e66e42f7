// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
#include "status_error.h"

#include <Python.h>

#include <nanobind/stl/string.h>

#include "text.h"

namespace nb = nanobind;

namespace boxlite::python {
namespace {

const char* DomainName(Domain domain) {
  switch (domain) {
    case Domain::kRuntime:
      return "runtime";
    case Domain::kBox:
      return "box";
    case Domain::kStart:
      return "start";
    case Domain::kExec:
      return "exec";
    case Domain::kImage:
      return "image";
    case Domain::kCopy:
      return "copy";
  }
  return "runtime";
}

// Runs with the GIL held (nanobind calls translators after the call guard is gone).
void Translate(const std::exception_ptr& p, void* payload) {
  try {
    std::rethrow_exception(p);
  } catch (const StatusError& e) {
    std::string code(StatusCodeName(e.status().code()));
    std::string subject(StatusSubjectName(e.status().subject()));
    try {
      nb::object helper = nb::module_::import_("boxlite.errors").attr("error_from_status");
      // Messages may name guest files: bytes, not necessarily UTF-8 (text.h).
      // The class is chosen from the code, the subject and the call's domain; never from
      // the message text.
      nb::object exc = helper(code, Text{e.status().message()}, Text{e.context()},
                              DomainName(e.domain()), subject);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    } catch (nb::python_error& helper_failed) {
      // The package is broken; still say what failed, with the core's code.
      helper_failed.discard_as_unraisable("boxlite.errors.error_from_status");
      std::string text = e.context() + ": " + code + ": " + e.status().message();
      PyErr_SetObject(static_cast<PyObject*>(payload), nb::cast(Text{text}).ptr());
    }
  }
}

}  // namespace

void RegisterStatusTranslator(nb::handle fallback) {
  // Lifetime: the module keeps `fallback` alive as an attribute for the interpreter's life.
  nb::register_exception_translator(&Translate, fallback.ptr());
}

}  // namespace boxlite::python
