# The README's screenshots of the page (in English, German and Arabic), from real transfers in
# Chromium (tests/e2e/test_phone.py writes them to web/screenshots when asked).
.PHONY: screenshots
screenshots: install system-deps web
	PEA_SCREENSHOTS=1 unshare -n sh -c 'ip link set lo up; exec $(BIN)/pytest $(PYTEST_FLAGS) -p no:cacheprovider tests/e2e/test_phone.py -k "screenshots and chromium"'
