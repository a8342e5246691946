# The README's screenshots of the page in German and Arabic, from a real transfer in
# Chromium (tests/e2e/test_phone.py writes them to web/screenshots when asked).
.PHONY: screenshots
screenshots: install system-deps web
	PEA_SCREENSHOTS=1 unshare -n sh -c 'ip link set lo up; exec $(BIN)/pytest $(PYTEST_FLAGS) -p no:cacheprovider "tests/e2e/test_phone.py::test_screenshots_in_german_and_arabic[chromium]"'
