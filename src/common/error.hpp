// Errors are values: every fallible operation returns Result<T>, which holds either a T or an
// Error saying what failed, the errno (if a system call failed) and the process exit status the
// CLI should use when the error reaches it.
#pragma once

#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "common/exit_status.hpp"

namespace hv {

struct Error {
  std::string message;
  int sys_errno = 0;
  ExitStatus status = ExitStatus::HostError;

  std::string to_string() const;

  // A failed system call; captures errno at the call site.
  static Error from_errno(std::string what, ExitStatus status = ExitStatus::HostError);
};

template <typename... Args>
Error make_error(ExitStatus status, fmt::format_string<Args...> format, Args&&... args) {
  return Error{fmt::format(format, std::forward<Args>(args)...), 0, status};
}

// A small std::expected stand-in: clang 14 cannot use libstdc++'s <expected>, and the fuzzers
// are built with clang.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value)
      : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  // Lets a Result<unique_ptr<Base>> be built from a unique_ptr<Derived>, as with std::expected.
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& value)  // NOLINT: implicit by design
      : storage_(std::in_place_index<0>, T(std::forward<U>(value))) {}
  Result(Error error) : storage_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return storage_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(storage_); }
  const T& value() const& { return std::get<0>(storage_); }
  T&& value() && { return std::get<0>(std::move(storage_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(storage_); }
  Error&& error() && { return std::get<1>(std::move(storage_)); }

 private:
  std::variant<T, Error> storage_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const {}
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace hv

// Propagates an error to the caller; yields the value otherwise. A GNU statement expression
// (g++ and clang both have them); __extension__ keeps -Wpedantic quiet about it.
#define HV_TRY(expr)                            \
  __extension__({                               \
    auto hv_try_result_ = (expr);               \
    if (!hv_try_result_.ok()) {                 \
      return std::move(hv_try_result_).error(); \
    }                                           \
    std::move(hv_try_result_).value();          \
  })
