# ref.mk: reference fixtures. Each tests/ref/NAME.py is run by Debian's
# /usr/bin/python3 (PyTorch, torchvision, PIL, scikit-learn) with one argument,
# the folder to fill, $(B)/ref/NAME/; tests read them from there (FD_BUILD).
REF_PY := $(filter-out tests/ref/stio.py,$(sort $(wildcard tests/ref/*.py)))
REF_STAMPS := $(REF_PY:tests/ref/%.py=$(B)/ref/%/.done)

$(B)/ref/%/.done: tests/ref/%.py tests/ref/stio.py
	@rm -rf $(@D) && mkdir -p $(@D)
	/usr/bin/python3 $< $(@D)
	@touch $@

ref-fixtures: $(REF_STAMPS)
.PHONY: ref-fixtures
