#!/bin/sh
# Compiler wrapper for building MMCV's C++ ops against torch >= 2.10.
# torch's headers require C++20, but MMCV's setup.py passes -std=c++14/17.
# GCC honours the last -std flag, so appending -std=c++20 wins.
exec "${MMSSL_REAL_CXX:-g++}" "$@" -std=c++20
