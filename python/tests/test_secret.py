# Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0
"""boxlite.Secret (python/boxlite/secret.py) without a VM: the fields reach the core's
rules (ValidateBoxOptions) and nothing shows the value."""

import pytest

import boxlite

VALUE = "sk-py-never-printed-0123456789"


def test_fields_and_a_repr_without_the_value() -> None:
    s = boxlite.Secret("API_KEY", VALUE, hosts=["api.example.com"])
    assert (s.name, s.value, s.hosts, s.placeholder) == ("API_KEY", VALUE, ["api.example.com"], None)
    assert s.get_placeholder() == "<BOXLITE_SECRET:API_KEY>"  # 0.9's default.
    assert boxlite.Secret("my key", "v").get_placeholder() == "<BOXLITE_SECRET:my key>"
    assert VALUE not in repr(s) and VALUE not in str(s) and "redacted" in repr(s)
    s.placeholder = "<BOXLITE_SECRET:API_KEY>"
    assert s.get_placeholder() == "<BOXLITE_SECRET:API_KEY>"
    assert boxlite.Secret("A", "v") == boxlite.Secret("A", "v", [])


def test_box_options_accept_secrets_and_the_core_checks_them() -> None:
    good = boxlite.Secret("API_KEY", VALUE, hosts=["*.example.com", "api.test:443"])
    opts = boxlite.BoxOptions(image="alpine", secrets=[good])
    assert opts.secrets == [good]
    assert VALUE not in repr(opts)
    # 0.9 takes any name: the variable is made of it.
    boxlite.BoxOptions(image="alpine", secrets=[boxlite.Secret("openai-key", VALUE, ["api.test"])])
    for bad in (boxlite.Secret("x" * 256, VALUE, ["api.test"]),
                boxlite.Secret("K", "", ["api.test"]),
                boxlite.Secret("K", VALUE, ["10.0.0.0/8"]),
                boxlite.Secret("K", VALUE, ["api.test:80"]),
                boxlite.Secret("K", VALUE, [], placeholder="short")):
        with pytest.raises(boxlite.ConfigError) as info:
            boxlite.BoxOptions(image="alpine", secrets=[bad])
        assert VALUE not in str(info.value)
    with pytest.raises(boxlite.ConfigError, match="BOXLITE_SECRET_A_B"):  # One variable.
        boxlite.BoxOptions(image="alpine", secrets=[boxlite.Secret("a-b", VALUE, ["api.test"]),
                                                   boxlite.Secret("a_b", "w", ["api.test"])])
    with pytest.raises(boxlite.ConfigError):
        boxlite.BoxOptions(image="alpine", secrets=["not a secret"])
    with pytest.raises(boxlite.ConfigError):
        boxlite.BoxOptions(image="alpine", network="none", secrets=[good])
