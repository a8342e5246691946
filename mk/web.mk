# Placeholder until the web client lands: owned by the web-client work.
.PHONY: web test-e2e
web:
	@true
test-e2e:
	@echo "no browser tests yet"
