function invoiceLine(amount, percent) {
  const net = Math.round(amount * (1 - percent / 100) * 100) / 100;
  return `net ${net}`;
}

module.exports = { invoiceLine };
