"""Debian's jupyter_kernel_test conformance suite (python3-jupyter-kernel-test) against the
finlora kernel, with every sample attribute filled in."""
import unittest

import jupyter_kernel_test

from conftest import KERNEL_NAME


class FinloraKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "go"
    file_extension = ".go"

    code_hello_world = 'fmt.Println("hello, world")'
    code_stderr = 'fmt.Fprintln(os.Stderr, "to stderr")'

    # Package members after "pkg.", keywords and names defined earlier.
    completion_samples = [
        {"text": "fmt.Printl", "matches": {"Println"}},
        {"text": "strings.ToUpp", "matches": {"ToUpper", "ToUpperSpecial"}},
        {"text": "fmt.Sprin"},
    ]
    complete_code_samples = ["x := 1", 'fmt.Println("hi")', "func f() int { return 1 }", "for i := 0; i < 3; i++ {\n}"]
    incomplete_code_samples = ["func f() {", "for {", "x := []int{1,\n2,", "s := `multi\nline"]
    invalid_code_samples = ["x := )", "}", "if {} else", "func f() { return ) }"]

    code_generate_error = 'panic("this cell fails")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'strings.ToUpper("go")', "result": "GO"},
        {"code": "1.5 + 1", "result": "2.5"},
    ]
    code_display_data = [
        {"code": 'display.HTML("<b>bold</b>")', "mime": "text/html"},
        {"code": 'display.Markdown("# title")', "mime": "text/markdown"},
        {"code": 'display.SVG(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>`)', "mime": "image/svg+xml"},
    ]
    code_inspect_sample = "fmt.Println"
    code_history_pattern = "6 ? 7"
    supported_history_operations = ("tail", "range", "search")
    code_clear_output = "display.ClearOutput(false)"


if __name__ == "__main__":
    unittest.main()
