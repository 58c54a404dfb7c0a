// The donor lookup: shows the one donor section whose address was typed or picked, or all of
// them. Without this script the page simply lists every donor.
"use strict";

(function () {
  const form = document.getElementById("donor-lookup");
  const input = document.getElementById("donor-address");
  const message = document.getElementById("donor-lookup-message");
  const showAll = document.getElementById("donor-show-all");
  const sections = Array.from(document.querySelectorAll("section.donor"));
  const ADDRESS = /^0x[0-9a-f]{40}$/;

  function show(address) {
    const expected = address.trim().toLowerCase();
    if (!ADDRESS.test(expected)) {
      message.textContent = "Enter an address: 0x followed by 40 hexadecimal digits.";
      return;
    }
    let found = false;
    for (const section of sections) {
      const match = section.dataset.address === expected;
      section.hidden = !match;
      found = found || match;
    }
    message.textContent = found
      ? ""
      : "No gifts from " + address.trim() + " in this ledger. Check the address, or pick one from the list.";
  }

  function reset() {
    for (const section of sections) {
      section.hidden = false;
    }
    message.textContent = "";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
    if (ADDRESS.test(input.value.trim().toLowerCase())) {
      history.replaceState(null, "", "#" + input.value.trim());
    }
  });
  showAll.addEventListener("click", function () {
    input.value = "";
    history.replaceState(null, "", location.pathname);
    reset();
  });

  // Links from the other pages name a donor in the fragment, such as donors.html#0xabc....
  const fragment = decodeURIComponent(location.hash.slice(1));
  if (fragment) {
    input.value = fragment;
    show(fragment);
  }
})();
