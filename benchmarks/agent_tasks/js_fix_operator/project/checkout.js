const { total } = require('./cart');

function receipt(items) {
  return `Total: ${total(items)}`;
}

module.exports = { receipt };
