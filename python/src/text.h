// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
//
// Text: a byte string crossing the Python boundary (names, paths, argv, env, messages).
// The core holds bytes that need not be UTF-8; Python holds str. The rule is Python's
// "surrogateescape" (os.fsencode/os.fsdecode on Linux, docs/python.md): to Python,
// UTF-8 with each undecodable byte as a lone surrogate U+DC80..U+DCFF; from Python, the
// reverse, so any bytes round-trip and nothing raises UnicodeDecodeError. bytes are
// accepted as they are. nanobind's own std::string conversion is strict UTF-8 both ways.
#pragma once

#include <Python.h>

#include <string>
#include <utility>

#include <nanobind/nanobind.h>

namespace boxlite::python {

struct Text {
  std::string bytes;
};

inline Text AsText(std::string s) { return Text{std::move(s)}; }

}  // namespace boxlite::python

namespace nanobind::detail {

template <>
struct type_caster<boxlite::python::Text> {
  NB_TYPE_CASTER(boxlite::python::Text, const_name("str | bytes"))

  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    PyObject* o = src.ptr();
    if (PyBytes_Check(o)) {
      value.bytes.assign(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
      return true;
    }
    if (!PyUnicode_Check(o)) return false;
    PyObject* encoded = PyUnicode_AsEncodedString(o, "utf-8", "surrogateescape");
    if (encoded == nullptr) {
      PyErr_Clear();  // A surrogate that stands for no byte: not convertible.
      return false;
    }
    value.bytes.assign(PyBytes_AS_STRING(encoded), static_cast<size_t>(PyBytes_GET_SIZE(encoded)));
    Py_DECREF(encoded);
    return true;
  }

  static handle from_cpp(const boxlite::python::Text& v, rv_policy, cleanup_list*) noexcept {
    return PyUnicode_DecodeUTF8(v.bytes.data(), static_cast<Py_ssize_t>(v.bytes.size()),
                                "surrogateescape");
  }
};

}  // namespace nanobind::detail
