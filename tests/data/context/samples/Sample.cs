using System;
using System.Collections.Generic;

namespace Store
{
    public interface IPriced
    {
        int Price();
    }

    public class Inventory
    {
        private readonly List<IPriced> items = new List<IPriced>();

        public void Add(IPriced item)
        {
            items.Add(item);
        }

        public int Total()
        {
            var total = 0;
            foreach (var item in items) total += item.Price();
            Console.WriteLine(total);
            return total;
        }
    }
}
