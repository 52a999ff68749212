const format = require('./format');

function total(items) {
  return format.formatPrice(items.reduce((sum, i) => sum + i.cents, 0));
}

module.exports = { total };
