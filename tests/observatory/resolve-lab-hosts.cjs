// Loaded with `node --require` into Mozilla's HTTP Observatory under test: resolves the lab's names
// (VANTAGE_LAB_HOSTS="name=ip,…") to their loopback addresses and refuses every other name, so the
// Observatory scans the same lab sites as Vantage and sends nothing off the machine.
"use strict";
const dns = require("node:dns");

const hosts = new Map(
  (process.env.VANTAGE_LAB_HOSTS || "")
    .split(",")
    .filter(Boolean)
    .map((entry) => entry.split("=")),
);

dns.lookup = function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  const address = hosts.get(String(hostname).toLowerCase());
  if (!address) {
    const error = new Error(`getaddrinfo ENOTFOUND ${hostname} (not a lab name)`);
    error.code = "ENOTFOUND";
    process.nextTick(callback, error);
    return;
  }
  if (options && options.all) {
    process.nextTick(callback, null, [{ address, family: 4 }]);
  } else {
    process.nextTick(callback, null, address, 4);
  }
};
