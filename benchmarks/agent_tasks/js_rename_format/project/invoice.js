const { formatPrice } = require('./format');

function line(item) {
  return item.name + ': ' + formatPrice(item.cents);
}

module.exports = { line };
